"""Model artifacts: serialize, and load only what verifies.

scikit-learn models are stored with skops, whose loader refuses types outside its trusted list;
River models with pickle, which runs code on load. So :func:`load_verified` checks the sha256 and the
signature first, and no deserializer ever sees bytes that did not verify.
"""

from __future__ import annotations

import pickle
from typing import Any

from shared.core.errors import ArtifactRejected
from shared.models.signing import Verifier, sha256_hex
from shared.models.version import ModelVersion, verify_record

FORMATS = ("skops", "pickle")


def dump(model: Any, fmt: str) -> bytes:
    """The artifact bytes of ``model`` in ``fmt``."""
    if fmt == "skops":
        import skops.io  # noqa: PLC0415 - skops imports all of scikit-learn: seconds, only when needed

        return bytes(skops.io.dumps(model))
    if fmt == "pickle":
        return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    raise ValueError(f"unknown artifact format {fmt!r}; expected one of {', '.join(FORMATS)}")


def load_verified(artifact: bytes, record: ModelVersion, verifier: Verifier) -> Any:
    """Deserialize ``artifact`` after checking its sha256 against ``record`` and the signature
    over the whole record (which holds the sha256, so covers the bytes too).

    Raises :class:`ArtifactRejected` before any deserializer runs when a check fails.
    """
    sha256, fmt = record.sha256, record.format
    actual = sha256_hex(artifact)
    if actual != sha256:
        raise ArtifactRejected(
            f"sha256 mismatch: registry says {sha256[:12]}…, bytes are {actual[:12]}…"
        )
    verify_record(record, verifier, model=record.model, version=record.version)
    if fmt == "skops":
        import skops.io  # noqa: PLC0415

        untrusted = skops.io.get_untrusted_types(data=artifact)
        if untrusted:
            raise ArtifactRejected(f"skops artifact holds untrusted types: {', '.join(untrusted)}")
        return skops.io.loads(artifact)
    if fmt == "pickle":
        # Safe only because the signature above verified: these bytes came from the trainer's key.
        return pickle.loads(artifact)  # noqa: S301
    raise ArtifactRejected(f"unknown artifact format {fmt!r}")
