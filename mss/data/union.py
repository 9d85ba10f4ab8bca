"""One dataset from several generated ones: every song of each, side by side, without copying audio.

The use is production diversity ("domain randomisation"): the same compositions rendered by generator v3
and v4 are two productions of one song, and training remixes stems across songs, so a v4 bass can play
under v3 drums. The union is a folder of symbolic links, one per song, named ``<song> [<tag>]``:

    python -m mss.data.union data/synth-v3v4 default data/synth-v4        # tags v3, v4 from the manifests

    OUT/train/Synth 001 - Cobalt Island [v3] -> <root of v3>/train/Synth 001 - Cobalt Island
    OUT/train/Synth 001 - Cobalt Island [v4] -> <root of v4>/train/Synth 001 - Cobalt Island
    OUT/setup.yaml      the first root's, validation_tracks: each root's, renamed
    OUT/manifest.json   the songs' active stems (as the embedded set's), renamed; which root is which tag

A song is in the validation split in the union if it is in its own root's; the parts must have the same
sources and sample rate. The links point at absolute paths: move the parts and rebuild the union.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import yaml

from mss.data.default_dataset import ensure_default_dataset
from mss.data.musdb_io import DEFAULT_NAMES, SUBSETS
from mss.errors import DatasetError
from mss.files import write_text_atomic

UNION_GENERATOR = "mss.data.union"


def _manifest(root: Path) -> dict:
    path = root / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: a generated dataset's manifest is needed for the union ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("songs"), dict):
        raise DatasetError(f"{path} is not a generated dataset's manifest (no 'songs')")
    return manifest


def _setup(root: Path) -> dict:
    path = root / "setup.yaml"
    try:
        setup = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetError(
            f"{path}: a generated dataset's setup file is needed for the union ({exc})"
        ) from exc
    if not isinstance(setup, dict) or not isinstance(setup.get("sources"), dict):
        raise DatasetError(f"{path} is not a musdb setup file (no 'sources')")
    return setup


def default_tag(manifest: dict, root: Path) -> str:
    """``v<generator_version>`` of a generated dataset, else the folder's name."""
    version = manifest.get("generator_version")
    return f"v{version}" if version is not None else root.name


def tagged(name: str, tag: str) -> str:
    """The union's name of song ``name`` of the part tagged ``tag``."""
    return f"{name} [{tag}]"


def build_union(
    out: str | os.PathLike, roots: list[str | os.PathLike], tags: list[str] | None = None
) -> Path:
    """Write the union of the generated datasets ``roots`` to ``out`` (a new or empty folder); returns it.

    roots: dataset folders ("default" is the embedded set). tags: one per root (default ``v<version>``).
    DatasetError if a part is not a generated dataset, if the parts differ in sources or sample rate, or
    if two parts share a tag."""
    out = Path(out)
    paths = [
        ensure_default_dataset() if str(root) in DEFAULT_NAMES else Path(root).expanduser() for root in roots
    ]
    if len(paths) < 2:
        raise DatasetError("a union needs at least two datasets")
    manifests = [_manifest(path) for path in paths]
    setups = [_setup(path) for path in paths]
    tags = list(tags) if tags else [default_tag(m, p) for m, p in zip(manifests, paths, strict=True)]
    if len(tags) != len(paths) or len(set(tags)) != len(tags):
        raise DatasetError(f"one distinct tag per dataset is needed, got {tags} for {len(paths)} datasets")
    kinds = [
        (setup["sources"], manifest.get("sample_rate"))
        for setup, manifest in zip(setups, manifests, strict=True)
    ]
    for path, kind in zip(paths[1:], kinds[1:], strict=True):
        if kind != kinds[0]:
            raise DatasetError(f"{path} has other sources or another sample rate than {paths[0]}")
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} exists and is not empty: the union is written to a new folder")
    songs, validation, parts = {}, [], []
    for path, tag, setup, manifest in zip(paths, tags, setups, manifests, strict=True):
        for subset in SUBSETS:
            folder = path / subset
            names = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
            (out / subset).mkdir(parents=True, exist_ok=True)
            for name in names:
                (out / subset / tagged(name, tag)).symlink_to(
                    (folder / name).resolve(), target_is_directory=True
                )
                entry = manifest["songs"].get(f"{subset}/{name}")
                if entry is not None:
                    songs[f"{subset}/{tagged(name, tag)}"] = entry
        validation += [tagged(name, tag) for name in setup.get("validation_tracks") or []]
        parts.append(
            {"tag": tag, "root": str(path.resolve()), "generator_version": manifest.get("generator_version")}
        )
    setup = dict(setups[0], validation_tracks=validation)
    write_text_atomic(out / "setup.yaml", yaml.safe_dump(setup, sort_keys=False))
    union = {
        key: manifests[0][key]
        for key in ("sample_rate", "format", "encoding", "mixture", "stems")
        if key in manifests[0]
    }
    union.update(generator=UNION_GENERATOR, parts=parts, validation_tracks=validation, songs=songs)
    write_text_atomic(out / "manifest.json", json.dumps(union, indent=1))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mss.data.union", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the union's folder (new or empty)")
    parser.add_argument("roots", nargs="+", help="generated dataset folders, or 'default'")
    parser.add_argument("--tags", help="comma-separated tag per dataset (default v<generator version>)")
    args = parser.parse_args(argv)
    try:
        out = build_union(args.out, args.roots, args.tags.split(",") if args.tags else None)
    except DatasetError as exc:
        parser.exit(2, f"error: {exc}\n")
    manifest = json.loads((out / "manifest.json").read_text())
    counts = {subset: len(list((out / subset).iterdir())) for subset in SUBSETS}
    print(
        f"{out}: {counts['train']} train songs ({len(manifest['validation_tracks'])} validation), "
        f"{counts['test']} test songs from {', '.join(p['tag'] for p in manifest['parts'])}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
