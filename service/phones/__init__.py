"""The phone intake: SmsForwarder webhooks (`webhooks`, `smsforwarder`), the hooks and their
database (`store`, `migrations/`), and the push outbox (`notify`, `push`). Its webhook blueprint
builds on the HTTP surface's request plumbing (`service.http.api`, `service.http.errors`); the HTTP
surface never imports it.
"""
