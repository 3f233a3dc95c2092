"""`dunscan hooks …` and `dunscan notify …`: manage SmsForwarder webhooks and the push outbox.

    dunscan hooks add --name NAME [--secret SECRET | --random-secret] [--notify URL]
                      [--base-url URL] [--format text|json]
    dunscan hooks list
    dunscan hooks remove TOKEN_OR_NAME
    dunscan notify run-once

Registered by service/cli/main.py (its `_EXTENSIONS`). Bad arguments exit 2 with one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from service.cli.usage import UsageError
from service.phones.smsforwarder import setup_settings
from service.phones.store import (
    HookError,
    create_hook,
    default_store,
    generate_secret,
    list_hooks,
    public_base_url,
    remove_hook,
)


def _cmd_add(args: argparse.Namespace) -> int:
    if args.secret is not None and args.random_secret:
        raise UsageError("give --secret or --random-secret, not both")
    secret = generate_secret() if args.random_secret else args.secret
    try:
        base = public_base_url(args.base_url)  # checked first: no hook for a URL phones can't use
        hook = create_hook(args.name, secret=secret, notify_url=args.notify)
    except HookError as error:
        raise UsageError(str(error)) from error
    url = hook.url(base)
    settings = setup_settings(url, hook.has_secret)
    if args.format == "json":
        print(
            json.dumps(
                {
                    "hook": hook.public(),
                    "url": url,
                    "secret": hook.secret,
                    "smsforwarder": settings,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    lines = [
        f"Hook {hook.name!r} created (id {hook.id}). Its URL is shown only now; keep it private.",
        "",
        "In SmsForwarder: 发送通道 → + → Webhook, then fill in:",
        f"  Webhook Server : {url}",
        "  请求方式 Method : POST",
        f"  消息模板 Params : {settings['webParams']}",
        "  Headers        : Content-Type = application/json",
        f"  Secret         : {hook.secret if hook.secret else '(leave empty)'}",
        "  成功应答关键字  : (leave empty)",
        "Then add a 转发规则 (SMS, and calls if you like) that uses this 发送通道.",
    ]
    if hook.notify_kind:
        lines.append(f"High-risk verdicts are pushed via {hook.notify_kind} to the notify URL.")
    if base.startswith("http://") and "127.0.0.1" not in base and "localhost" not in base:
        lines.append("Warning: plain http exposes the URL and signature; prefer https.")
    print("\n".join(lines))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    hooks = [hook.public() for hook in list_hooks()]
    if args.format == "json":
        print(json.dumps(hooks, ensure_ascii=False, indent=2))
        return 0
    if not hooks:
        print("no hooks yet: dunscan hooks add --name NAME")
        return 0
    for hook in hooks:
        created = datetime.fromtimestamp(hook["created_at"], UTC).strftime("%Y-%m-%d %H:%M")
        notify = f"{hook['notify_kind']} {hook['notify']}" if hook["notify"] else "-"
        print(
            f"{hook['id']:>4}  {hook['name']:<20} token {hook['token']:<8} "
            f"secret {hook['secret']:<4}  notify {notify}  created {created}Z"
        )
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    try:
        hook = remove_hook(args.token_or_name)
    except HookError as error:
        raise UsageError(str(error)) from error
    print(f"removed hook {hook.name!r} (id {hook.id})")
    return 0


def _cmd_notify_run_once(args: argparse.Namespace) -> int:
    from service.phones.notify import Deliverer

    deliverer = Deliverer(default_store())
    result = deliverer.run_once()
    print(
        f"delivered {result.delivered}, retry later {result.retried}, "
        f"abandoned {result.abandoned}, purged {result.purged}, "
        f"still pending {deliverer.pending()}",
        file=sys.stderr,
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    hooks = subparsers.add_parser("hooks", help="SmsForwarder webhooks: add, list, remove")
    hook_commands = hooks.add_subparsers(dest="hooks_command", required=True, metavar="COMMAND")

    add = hook_commands.add_parser("add", help="create a webhook and print the app settings")
    add.add_argument("--name", required=True, help="whose phone this is, e.g. 'mum'")
    add.add_argument("--secret", help="SmsForwarder's Secret: requests must then be signed")
    add.add_argument("--random-secret", action="store_true", help="generate the secret")
    add.add_argument(
        "--notify",
        metavar="URL",
        help="push high-risk verdicts here: ntfy topic URL, Bark URL or any URL "
        "taking JSON (prefix ntfy+ / bark+ / json+ to force the kind)",
    )
    add.add_argument("--base-url", help="public URL of this service (default DUNSCAN_PUBLIC_URL)")
    add.add_argument("--format", choices=["text", "json"], default="text")
    add.set_defaults(func=_cmd_add)

    listing = hook_commands.add_parser("list", help="list hooks (secrets and tokens masked)")
    listing.add_argument("--format", choices=["text", "json"], default="text")
    listing.set_defaults(func=_cmd_list)

    remove = hook_commands.add_parser("remove", help="remove a hook by its full token or name")
    remove.add_argument("token_or_name")
    remove.set_defaults(func=_cmd_remove)

    notify = subparsers.add_parser("notify", help="deliver pending push notifications")
    notify_commands = notify.add_subparsers(dest="notify_command", required=True, metavar="COMMAND")
    run_once = notify_commands.add_parser(
        "run-once", aliases=["flush"], help="deliver every due notification once, then exit"
    )
    run_once.set_defaults(func=_cmd_notify_run_once)
