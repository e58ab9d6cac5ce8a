"""TF Serving's gRPC services (PredictionService, ModelService) on grpc.aio.

The servicers come from tensorflow-serving-api's generated code, so any TF Serving client
sees the same method names, messages and status codes.
"""

from __future__ import annotations

import time

import grpc
from google.protobuf import any_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from model_server import tensors
from model_server.errors import ServingError, invalid_argument, not_found
from model_server.servable import Servable, version_for_label

SIGNATURE_DEF_FIELD = "signature_def"


def _version(model_spec) -> int | None:
    if model_spec.HasField("version"):
        return model_spec.version.value
    if model_spec.version_label:
        return version_for_label(model_spec.version_label)
    return None


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, servable: Servable) -> None:
        self.servable = servable

    async def Predict(
        self, request: predict_pb2.PredictRequest, context
    ) -> predict_pb2.PredictResponse:
        started = time.perf_counter()
        status = "OK"
        try:
            spec = request.model_spec
            resolved = self.servable.resolve(spec.name, _version(spec), spec.signature_name)
            inputs = {name: tensors.to_numpy(t, name) for name, t in request.inputs.items()}
            outputs = await self.servable.predict(resolved, inputs)
            wanted = list(request.output_filter) or list(outputs)
            unknown = sorted(set(wanted) - set(outputs))
            if unknown:
                raise invalid_argument(f"output_filter names unknown outputs {unknown}")
            response = predict_pb2.PredictResponse()
            response.model_spec.name = resolved.model.name
            response.model_spec.version.value = resolved.model.version
            response.model_spec.signature_name = resolved.signature.name
            for name in wanted:
                response.outputs[name].CopyFrom(tensors.to_proto(outputs[name]))
            return response
        except ServingError as exc:
            status = exc.code.name
            await context.abort(exc.code, exc.message)
        finally:
            latency_us = (time.perf_counter() - started) * 1e6
            self.servable.metrics.record_request(
                request.model_spec.name, status, latency_us, api="Predict", entrypoint="GRPC"
            )

    async def GetModelMetadata(self, request, context):
        try:
            spec = request.model_spec
            fields = list(request.metadata_field)
            if fields != [SIGNATURE_DEF_FIELD]:
                raise invalid_argument(
                    f"metadata_field must be [{SIGNATURE_DEF_FIELD!r}], got {fields}"
                )
            resolved = self.servable.resolve(spec.name, _version(spec), "")
        except ServingError as exc:
            await context.abort(exc.code, exc.message)
        model = resolved.model
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, sig in model.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(sig)
        packed = any_pb2.Any()
        packed.Pack(signature_map)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        response.metadata[SIGNATURE_DEF_FIELD].CopyFrom(packed)
        return response

    async def Classify(self, request, context):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Classify is not supported")

    async def Regress(self, request, context):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Regress is not supported")

    async def MultiInference(self, request, context):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not supported")


def model_status(servable: Servable, name: str, version: int | None):
    """GetModelStatusResponse for the model, or ServingError NOT_FOUND with the words of
    tensorflow_serving/model_servers/get_model_status_impl.cc, which asks the servable state
    monitor and not the manager, hence not "Servable not found" as Predict says."""
    if name != servable.name:
        raise not_found(f"Could not find any versions of model {name}")
    response = get_model_status_pb2.GetModelStatusResponse()
    current = servable.version
    if version is not None and current is not None and version != current:
        raise not_found(f"Could not find version {version} of model {name}")
    status = response.model_version_status.add()
    status.version = current if current is not None else (version or 0)
    status.state = int(servable.state)
    if servable.error:
        status.status.error_code = grpc.StatusCode.UNKNOWN.value[0]
        status.status.error_message = servable.error
    return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, servable: Servable) -> None:
        self.servable = servable

    async def GetModelStatus(self, request, context):
        try:
            spec = request.model_spec
            return model_status(self.servable, spec.name, _version(spec))
        except ServingError as exc:
            await context.abort(exc.code, exc.message)

    async def HandleReloadConfigRequest(self, request, context):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "reloading the config is not supported")


def add_services(server: grpc.aio.Server, servable: Servable) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(servable), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(servable), server)
