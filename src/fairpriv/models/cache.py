"""Keep lm-eval's ``--use_cache`` from mixing a variant's answers with its base model's.

lm-eval 0.4 keys its sqlite cache by request only (``hash_args(method, request.args)``), not by model arguments,
so ``dean-hf`` and ``hf`` on the same base model would read each other's answers from one cache file. lm-eval
builds the cache through ``lm_eval.api.model.CachingLM(lm, path)`` right after creating the model; we replace
that attribute with a subclass that gives any model carrying a ``fairpriv_cache_salt`` its own database file
beside the user's (``<path>_rank0.db`` -> ``<path>_rank0.fairpriv-<salt>.db``). Models without a salt, such as
plain ``hf``, are untouched. The swap itself is :func:`fairpriv.lm_eval_compat.salt_caching_lm`.
"""

from __future__ import annotations

from fairpriv import lm_eval_compat


def salted_path(cache_db: str, salt: str) -> str:
    """``x_rank0.db`` -> ``x_rank0.fairpriv-<salt>.db`` (any path without ``.db`` just gets the suffix)."""
    stem = cache_db[:-3] if cache_db.endswith(".db") else cache_db
    return f"{stem}.fairpriv-{salt}.db"


def install() -> None:
    """Replace ``lm_eval.api.model.CachingLM`` with the salted subclass (idempotent; the plugin calls it when
    lm-eval's HFLM module loads, and ``<name>-vllm`` when it loads lm-eval's VLLM)."""
    lm_eval_compat.salt_caching_lm(salted_path)
