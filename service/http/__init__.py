"""The HTTP surface: the JSON API (`api`), the page and share target (`web`, `result_page`,
templates/ and static/), the OpenAPI document (`openapi`), JSON errors (`errors`) and Prometheus
metrics (`metrics`). It uses the engine and never the phone intake; `service.app` puts the two
together.
"""
