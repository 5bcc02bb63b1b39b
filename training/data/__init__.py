"""The reproducible training-data pipeline: a manifest of pinned public packages
(`manifest.py`, written by `select.py`), their verified download (`fetch.py`), their
source read as semcode indexes it (`sources.py`), (query, code) pairs with hard negatives
per package (`pairs.py`, `negatives.py`) and the de-duplicated, split output
(`build.py`)."""
