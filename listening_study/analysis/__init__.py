"""From ratings to results: row screening and statistics, the objective metrics of the rated excerpts,
their correlations with the ratings, figures, and the one pipeline (``pipeline.analyze``) that the app
and ``python -m listening_study.analysis`` both run."""
