"""The data the package ships: `service.data.rules` (rule files and official-number lists) and
`service.data.model` (the trained artifact and its manifest).

Neither lives here in the repository: pyproject.toml maps the top-level `rules/` and
`model/artifact/` onto these names at build time (and an editable install maps them in place),
so the files are edited where they always were. `service.paths` finds them through
importlib.resources.
"""
