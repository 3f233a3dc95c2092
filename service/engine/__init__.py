"""The verdict engine: a record in, a verdict out.

normalise (`normalize`) → numbers and the official directory (`numbers/`) → rules (`rules`) →
the model's input and the compiled scorer (`model`, `scorer`, `artifact`) → the verdict
(`analysis`, `pipeline`, `advice`, `summary`). It imports nothing from `service.http`,
`service.phones` or `service.cli` (tests/test_layers.py holds that), so the command line, a Spark
executor and the HTTP service all load the same engine and nothing else.
"""
