"""The command line (`dunscan`, `main`) and the batch programs beside it: `hooks` (dunscan hooks
and notify), `records_io` (the files `dunscan score` reads and writes) and `spark` (the same batch
scorer on Apache Spark). `python -m service.cli` runs `main`.
"""
