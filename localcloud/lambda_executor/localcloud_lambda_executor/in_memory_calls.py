"""LocalStack's calls to itself served in memory with its own service specifications.

With ``IN_MEMORY_CLIENT=1`` (``localcloud/server.py``) a request one of LocalStack's services
makes to another (an event source mapping's receive and invoke, SNS -> SQS, API Gateway -> Lambda,
Step Functions tasks) is handed to its gateway's handler chain on the caller's thread
(``localstack/aws/client.py``, ``GatewayShortCircuit``) instead of going out over HTTP and back
in through Twisted. But that path tells the chain the service model of the calling boto3 client,
and every client has its own model object, where a request from outside gets the one model per
service that LocalStack's service catalog keeps. LocalStack builds and caches a request parser
and a response serializer per model object (``functools.cache`` on ``create_parser``,
``create_serializer``): for a REST service such as Lambda that compiles a routing map of all its
operations, for each new client, kept for ever. Sampled with py-spy (``--gil``) under load,
~3 % of LocalStack's CPU went to compiling such maps.

Here the in-memory path is given the catalog's model for the client's service and protocol, and
its operation of the same name: the same specification the HTTP path parses with, so the same
request is parsed and answered the same way, by parsers built once.
"""

from __future__ import annotations

from typing import Any

_CACHED = "_localcloud_cached"


def install() -> None:
    """Wrap ``GatewayShortCircuit.__call__`` so the request carries the catalog's model."""
    from localstack.aws.client import GatewayShortCircuit
    from localstack.aws.spec import get_service_catalog

    short_circuit = GatewayShortCircuit.__call__
    if getattr(short_circuit, _CACHED, False):
        return

    def with_catalog_model(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        operation = getattr(request, "operation_model", None)
        if operation is not None:
            client_model = operation.service_model
            shared = get_service_catalog().get(client_model.service_name, client_model.protocol)
            if shared is not None and shared is not client_model:
                request.operation_model = shared.operation_model(operation.name)
        return short_circuit(self, event_name, request, **kwargs)

    setattr(with_catalog_model, _CACHED, True)
    GatewayShortCircuit.__call__ = with_catalog_model  # type: ignore[method-assign]
