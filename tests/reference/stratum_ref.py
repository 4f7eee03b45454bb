"""Reference for the native stratum scan (detectors.hpp ``scan_stratum``).

Built on the ``json`` module: split at newlines, decode each line as one
JSON object, apply the method rules. Returns None or ``(coin, agent)``.
"""

from __future__ import annotations

import json
from typing import Any

STRATUM_V1 = {
    "mining.subscribe",
    "mining.authorize",
    "mining.submit",
    "mining.notify",
    "mining.set_difficulty",
    "mining.set_target",
    "mining.configure",
    "mining.extranonce.subscribe",
    "mining.get_transactions",
}
ETH_WORK = {"eth_submitLogin", "eth_getWork", "eth_submitWork", "eth_submitHashrate"}
BTC_WORK = {"getwork", "getblocktemplate", "submitblock"}
MAX_DEPTH = 32


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(v: Any) -> int:
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    return 0


def _contains_string(v: Any, s: str) -> bool:
    if isinstance(v, str):
        return v == s
    if isinstance(v, dict):
        return any(_contains_string(x, s) for x in v.values())
    if isinstance(v, list):
        return any(_contains_string(x, s) for x in v)
    return False


def _xmr_coin(algo: Any, seed_hash: bool, wallet_xmr: bool) -> str:
    if wallet_xmr or seed_hash:
        return "xmr"
    if not isinstance(algo, str) or algo.startswith(("rx/", "cn")):
        return "xmr"
    return "unknown"


def _judge(obj: dict) -> tuple[str, str | None] | None:
    method = obj.get("method")
    params = obj.get("params")
    if isinstance(method, str):
        if method in STRATUM_V1:
            if "params" not in obj:
                return None
            agent = None
            if (
                method == "mining.subscribe"
                and isinstance(params, list)
                and params
                and isinstance(params[0], str)
            ):
                agent = params[0] or None  # an empty agent names no miner
            return "unknown", agent
        if method in ETH_WORK:
            return "eth", None
        if method in BTC_WORK:
            return "unknown", None
        if not isinstance(params, dict):
            return None
        wallet_xmr = False
        if method == "login":
            ok = "login" in params and ("agent" in params or "pass" in params)
            login = params.get("login")
            wallet_xmr = (
                isinstance(login, str) and login[:1] in ("4", "8") and len(login) in (95, 106)
            )
        elif method == "job":
            ok = all(k in params for k in ("blob", "job_id", "target"))
        elif method == "submit":
            ok = all(k in params for k in ("job_id", "nonce", "result"))
        else:
            ok = method == "keepalived"
        if not ok:
            return None
        algo = params.get("algo")
        if isinstance(algo, list):
            algo = algo[0] if algo and isinstance(algo[0], str) else None
        coin = _xmr_coin(algo, "seed_hash" in params, wallet_xmr)
        agent = params.get("agent") if method == "login" else None
        return coin, agent if isinstance(agent, str) and agent else None
    result = obj.get("result")
    if isinstance(result, dict) and isinstance(result.get("job"), dict):
        job = result["job"]
        if all(k in job for k in ("blob", "job_id", "target")):
            return _xmr_coin(job.get("algo"), "seed_hash" in job, False), None
    if isinstance(result, list) and _contains_string(result, "mining.notify"):
        return "unknown", None
    return None


def scan_stratum(data: bytes) -> tuple[str, str | None] | None:
    """(coin, agent) when some line is a mining message, else None."""
    if data.lstrip(b" \t\r\n")[:1] != b"{":
        return None
    for line in data.split(b"\n"):
        if line.lstrip(b" \t\r")[:1] != b"{":
            continue
        try:
            obj = json.loads(line.decode("latin-1"), parse_constant=_refuse_constant)
        except ValueError:
            continue
        if not isinstance(obj, dict) or _depth(obj) > MAX_DEPTH:
            continue
        verdict = _judge(obj)
        if verdict is not None:
            return verdict
    return None
