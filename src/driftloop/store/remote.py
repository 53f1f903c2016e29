"""Remote file systems (fsspec URLs: ``s3://``, ``memory://``, …) with one clear error each.

:func:`remote_fs` opens the file system of a URL; :func:`remote_errors` turns what an object
store answers when it is misconfigured (no such bucket, access denied, no credentials, endpoint
unreachable) into one :class:`~driftloop.errors.ConfigError` that names the URL and what to do.
A missing *object* stays a ``FileNotFoundError`` for the caller to explain.

S3 (and MinIO, Ceph, R2, moto, …) goes through s3fs, which reads the usual AWS variables:
``AWS_ENDPOINT_URL`` for a server that is not AWS, ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` or ``AWS_PROFILE``, ``AWS_DEFAULT_REGION``. A file system is made
fresh for each URL opened (not taken from fsspec's instance cache), so a change to those
variables takes effect.

Examples
--------
>>> fs, path = remote_fs("memory://remote-doc/a", "an example")
>>> path
'/remote-doc/a'
>>> with remote_errors("memory://remote-doc/a", "an example"):
...     fs.pipe_file(path, b"x")
>>> remote_fs("gs://bucket/prefix", "the artifact store")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
driftloop.errors.ConfigError: the artifact store 'gs://bucket/prefix' needs a package that is not installed (...gcsfs...). Install it (for s3://: pip install 'driftloop[s3]') or use another URL.
"""  # noqa: E501

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fsspec
from fsspec.core import url_to_fs

from driftloop.errors import ConfigError

# S3 error codes that mean "the store is misconfigured", not "this object is missing"
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
           "InvalidToken", "AllAccessDisabled", "AccountProblem"}


def remote_fs(url: str, what: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The file system of ``url`` and the path inside it; ``what`` names it in errors."""
    try:
        return url_to_fs(url, skip_instance_cache=True)
    except ImportError as exc:
        raise ConfigError(
            f"{what} '{url}' needs a package that is not installed ({exc}). Install it (for "
            "s3://: pip install 'driftloop[s3]') or use another URL."
        ) from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{what} '{url}' cannot be used: {exc}.") from None


@contextmanager
def remote_errors(url: str, what: str, action: str | None = None) -> Iterator[None]:
    """Turn a misconfigured object store's error inside the block into one ConfigError;
    ``action`` (e.g. ``"write artifact …"``) says what was being done."""
    try:
        yield
    except (FileNotFoundError, FileExistsError):
        raise
    except Exception as exc:  # noqa: BLE001 - classified below, re-raised when not ours
        where = f"{what} '{url}'" + (f" (trying to {action})" if action else "")
        message = _explain(exc, where)
        if message is None:
            raise
        raise ConfigError(message) from None


def no_such_bucket(exc: BaseException) -> bool:
    """True when ``exc`` (a ``FileNotFoundError`` from s3fs) means the bucket is missing."""
    return _code(exc) == "NoSuchBucket"


def bucket_message(url: str, what: str) -> str:
    """The message for a bucket that does not exist."""
    bucket = url.split("://", 1)[-1].split("/", 1)[0]
    return (f"{what} '{url}': the bucket '{bucket}' does not exist at {_endpoint()}. Create "
            f"it (e.g. `aws s3 mb s3://{bucket}`) or fix the URL (DRIFTLOOP_ARTIFACTS_URL).")


def _explain(exc: BaseException, where: str) -> str | None:
    code, name = _code(exc), type(exc).__name__
    if code in _DENIED or isinstance(exc, PermissionError):
        return (f"{where}: access denied ({_first_line(exc)}). Check the credentials "
                "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) and that they "
                "may read and write this bucket and prefix.")
    if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
        return (f"{where}: no usable credentials ({_first_line(exc)}). Set AWS_ACCESS_KEY_ID "
                "and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) for this process.")
    if _is_connection_error(exc):
        return (f"{where}: cannot reach {_endpoint()} ({_first_line(exc)}). Check that the "
                "server runs and AWS_ENDPOINT_URL names it (scheme, host and port).")
    if code is not None or _from_botocore(exc):
        return (f"{where}: the object store refused the request ({code or name}: "
                f"{_first_line(exc)}). Check the URL, the bucket and the credentials.")
    return None


def _code(exc: BaseException) -> str | None:
    """The S3 error code of ``exc`` or of the botocore error s3fs translated it from."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        response: Any = getattr(seen, "response", None)
        if isinstance(response, dict):
            return response.get("Error", {}).get("Code")
        seen = seen.__cause__ or seen.__context__
    return None


def _is_connection_error(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError",
                         "ProxyConnectionError", "ClientConnectorError"}) or (
        isinstance(exc, ConnectionError))


def _from_botocore(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("botocore", "aiobotocore", "s3fs")


def _endpoint() -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return f"the endpoint {endpoint}" if endpoint else "AWS S3 (no AWS_ENDPOINT_URL is set)"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


__all__ = ["bucket_message", "no_such_bucket", "remote_errors", "remote_fs"]
