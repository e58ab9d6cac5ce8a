"""TF Serving's REST predict body <-> numpy, shared by the model server's REST API and the
service's generic `/v1/models/NAME:predict`, so both read and answer it identically.

Forms (TF Serving's RESTful API guide): row `{"instances": [...]}` answered with
`{"predictions": ...}`, columnar `{"inputs": ...}` answered with `{"outputs": ...}`; a single
input may be given unnamed; strings may be `{"b64": "..."}`; `signature_name` picks the
signature. Every mistake is INVALID_ARGUMENT with one sentence naming the input.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from model_server.errors import invalid_argument
from model_server.signature_spec import SignatureSpec
from model_server.tensors import dtype_name


@dataclass(frozen=True)
class PredictBody:
    signature_name: str
    row: bool  # "instances" (row form) rather than "inputs" (columnar)
    data: Any

    def inputs(self, signature: SignatureSpec) -> dict[str, np.ndarray]:
        """The body's tensors, converted to the signature's dtypes (not yet shape-checked)."""
        if self.row:
            return _row_inputs(self.data, signature)
        return _columnar_inputs(self.data, signature)

    def without_data(self) -> PredictBody:
        """What rendering the answer needs, without the decoded values. A decoded image is
        thousands of lists the collector tracks: held while the request waits for its
        inference, every young collection walks every request in flight (10-35 ms
        collections and 100 ms older ones in the service at ~1,000 req/s of 32x32x3 images,
        each a stall of the event loop that TF Serving, in C++, does not have)."""
        return PredictBody(self.signature_name, self.row, None)

    def render(self, outputs: dict[str, np.ndarray]) -> dict[str, Any]:
        if self.row:
            return {"predictions": _row_outputs(outputs)}
        return {"outputs": _columnar_outputs(outputs)}


def parse_body(raw: bytes) -> PredictBody:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_argument(f"JSON Parse error: {exc}") from None
    return predict_body(body)


def predict_body(body: Any) -> PredictBody:
    """A decoded JSON body checked for the form's keys."""
    if not isinstance(body, dict):
        raise invalid_argument("the request body must be a JSON object")
    signature_name = body.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise invalid_argument("'signature_name' key must be a string value.")
    if ("instances" in body) == ("inputs" in body):
        raise invalid_argument("give exactly one of 'instances' (row) or 'inputs' (columnar)")
    row = "instances" in body
    return PredictBody(signature_name, row, body["instances"] if row else body["inputs"])


def _as_array(value: Any, name: str, signature: SignatureSpec) -> np.ndarray:
    """JSON values as the signature's dtype; like TF Serving, a float for an integer input
    (or anything for a bool one) is an error rather than a silent conversion."""
    spec = signature.inputs.get(name)
    if spec is None:
        raise invalid_argument(
            f"input {name!r} is not an input of signature {signature.name!r}; "
            f"it takes {sorted(signature.inputs)}"
        )
    want = spec.dtype.kind
    if want == "O":
        value = _strings(value, name)
    try:
        array = np.asarray(value, dtype=object if want == "O" else None)
    except (ValueError, TypeError) as exc:
        raise invalid_argument(f"input {name!r} is not a rectangular array: {exc}") from None
    got = array.dtype.kind
    if want != "O" and array.size:
        fits = got == want or (got in "iu" and want in "iuf")
        if not fits:
            raise invalid_argument(
                f"input {name!r}: JSON values of type {array.dtype} are not of expected type "
                f"{dtype_name(spec.dtype_code)}"
            )
        if want in "iu" and (
            array.min() < np.iinfo(spec.dtype).min or array.max() > np.iinfo(spec.dtype).max
        ):
            raise invalid_argument(
                f"input {name!r}: a value is out of range for {dtype_name(spec.dtype_code)}"
            )
    return array.astype(spec.dtype, copy=False)


def _strings(value: Any, name: str) -> Any:
    """JSON strings, or TF Serving's `{"b64": "..."}` for binary ones, as bytes (any nesting)."""
    if isinstance(value, list):
        return [_strings(item, name) for item in value]
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except binascii.Error:
            raise invalid_argument(f"input {name!r}: 'b64' value is not valid base64") from None
    raise invalid_argument(
        f'input {name!r} takes strings (or {{"b64": ...}} objects), got {type(value).__name__}'
    )


def _listify(name: str, value: np.ndarray) -> Any:
    """An output as JSON values; strings as text, or `{"b64": ...}` when the output's name
    ends in `_bytes`, which is TF Serving's convention for binary outputs."""
    if value.dtype.kind != "O":
        return value.tolist()
    binary = name.endswith("_bytes")

    def convert(item: Any) -> Any:
        if isinstance(item, list):
            return [convert(i) for i in item]
        if isinstance(item, bytes):
            if binary:
                return {"b64": base64.b64encode(item).decode()}
            return item.decode("utf-8", "replace")
        return item

    return convert(value.tolist())


def _row_inputs(instances: Any, signature: SignatureSpec) -> dict[str, np.ndarray]:
    if not isinstance(instances, list) or not instances:
        raise invalid_argument("'instances' must be a non-empty list")
    names = list(signature.inputs)
    if all(isinstance(row, dict) and set(row) != {"b64"} for row in instances):
        keys = set(instances[0])
        if any(set(row) != keys for row in instances):
            raise invalid_argument("every instance must name the same inputs")
        return {k: _as_array([row[k] for row in instances], k, signature) for k in keys}
    if len(names) != 1:
        raise invalid_argument(
            f"the signature has inputs {names}; each instance must be an object naming them"
        )
    return {names[0]: _as_array(instances, names[0], signature)}


def _columnar_inputs(inputs: Any, signature: SignatureSpec) -> dict[str, np.ndarray]:
    names = list(signature.inputs)
    if isinstance(inputs, dict) and inputs:
        return {k: _as_array(v, k, signature) for k, v in inputs.items()}
    if len(names) != 1:
        raise invalid_argument(f"'inputs' must be an object naming the inputs {names}")
    return {names[0]: _as_array(inputs, names[0], signature)}


def _row_outputs(outputs: dict[str, np.ndarray]) -> list:
    if len(outputs) == 1:
        name, value = next(iter(outputs.items()))
        return _listify(name, value)
    columns = {name: _listify(name, value) for name, value in outputs.items()}
    rows = len(next(iter(columns.values())))
    return [{name: column[i] for name, column in columns.items()} for i in range(rows)]


def _columnar_outputs(outputs: dict[str, np.ndarray]) -> Any:
    if len(outputs) == 1:
        name, value = next(iter(outputs.items()))
        return _listify(name, value)
    return {name: _listify(name, value) for name, value in outputs.items()}
