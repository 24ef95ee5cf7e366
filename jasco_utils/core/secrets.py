"""Keeping secrets out of everything the project writes or prints.

API keys reach the project one way only: from an environment variable a configuration names
(``api_key_env``). A backend that reads one registers its value here (:func:`register`), and
:func:`redact` replaces it, and anything that looks like a credential, before text is stored
(the call store's ``failures`` table, a row's ``error`` column, provenance) or printed:

* the registered secret values, wherever they appear (a server may echo a key in its error);
* the user and password of a URL (``https://user:pass@host`` -> ``https://***@host``);
* the values of query parameters and headers named like keys (``api_key=``, ``token=``,
  ``Authorization: Bearer ...``);
* strings shaped like common API keys (``sk-...``, ``hf_...``).
"""

from __future__ import annotations

import re
import threading

MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@:]*(?::[^/\s@]*)?@")
_NAMED = re.compile(
    r"(?i)(?P<name>\b[\w-]*(?:api[_-]?key|apikey|token|secret|password|passwd)\b['\"]?\s*[=:]\s*['\"]?)"
    r"(?P<value>[^\s'\"&,;})\]]+)"
)
_BEARER = re.compile(r"(?i)(?P<name>\bbearer\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})")
_KEY_SHAPES = re.compile(r"\b(?:sk-[A-Za-z0-9_-]{8,}|hf_[A-Za-z0-9]{8,}|xox[abp]-[A-Za-z0-9-]{8,})")


def register(secret: str | None) -> None:
    """Remember a secret's value so that :func:`redact` hides it (values under 4 characters,
    such as the ``EMPTY`` placeholder of local servers, are too common to hide)."""
    if secret and len(secret) >= 4 and secret != "EMPTY":
        with _lock:
            _secrets.add(secret)


def redact(text: str) -> str:
    """``text`` with secrets and credentials replaced by ``***``.

    >>> redact("POST https://bob:hunter22@api.example.com/v1 failed")
    'POST https://***@api.example.com/v1 failed'
    >>> redact("401: invalid api_key=sk-abcdefgh12345678 (token: abc123xyz)")
    '401: invalid api_key=*** (token: ***)'
    >>> redact("Authorization: Bearer abcdefghijklmnop")
    'Authorization: Bearer ***'
    >>> redact('{"max_tokens": 1000, "prompt_tokens": 12}')
    '{"max_tokens": 1000, "prompt_tokens": 12}'
    """
    if not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, MASK)
    text = _URL_CREDENTIALS.sub(lambda m: m["scheme"] + MASK + "@", text)
    text = _NAMED.sub(lambda m: m["name"] + MASK, text)
    text = _BEARER.sub(lambda m: m["name"] + MASK, text)
    return _KEY_SHAPES.sub(MASK, text)


def has_url_credentials(url: str) -> bool:
    """Whether ``url`` carries a user or password (``scheme://user:pass@host``)."""
    return bool(_URL_CREDENTIALS.search(url))


#: Words that mark a name as a secret's (a notebook parameter, a configuration option), as
#: one of its ``_``-separated parts (``hf_token``, not ``tokenizer_mode``).
SECRET_WORDS: tuple[str, ...] = ("api_key", "apikey", "key", "token", "secret", "password", "passwd", "credentials")


def looks_secret(name: str) -> bool:
    """Whether a parameter or option name is a secret's (``*_env`` names a variable: not one).

    >>> [looks_secret(n) for n in ("api_key", "hf_token", "api_key_env", "tokenizer_mode", "max_tokens")]
    [True, True, False, False, False]
    """
    low = name.lower().replace("-", "_")
    if low.endswith("_env"):
        return False
    parts = low.split("_")
    return any(w in parts or ("_" in w and w in low) for w in SECRET_WORDS)


def refuse_secret_parameters(namespace: dict) -> None:
    """Stop a notebook given a parameter named like a secret (``papermill -p api_key ...``).

    Keys reach the project from environment variables only (``api_key_env`` names one).

    Raises:
        ValueError: Naming the parameter and what to do instead.

    >>> refuse_secret_parameters({"run_dir": "runs/cpu", "api_key_env": "OPENAI_API_KEY"})
    >>> refuse_secret_parameters({"api_key": "sk-1"})
    Traceback (most recent call last):
    ...
    ValueError: parameter 'api_key' looks like a secret: keys are read from environment variables only (name one with api_key_env in the judges file or run configuration); delete this executed notebook, which holds the value papermill injected
    """
    for name, value in namespace.items():
        if isinstance(value, (str, int, float, bool, list, dict)) and not name.startswith("_") and looks_secret(name):
            raise ValueError(
                f"parameter {name!r} looks like a secret: keys are read from environment variables only (name one "
                "with api_key_env in the judges file or run configuration); delete this executed notebook, which "
                "holds the value papermill injected"
            )
