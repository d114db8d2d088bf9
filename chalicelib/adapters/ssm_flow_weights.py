"""The flow weights as an SSM parameter, read through Powertools' cache."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import (
    GetParameterError,
    TransformParameterError,
)

from chalicelib.orders.flow_choice import FlowWeights, InvalidFlowWeightsError
from chalicelib.ports import FlowWeightsSource
from chalicelib.settings import ConfigurationError

# How long a warm function keeps the weights it read (Powertools' default would be 300 s):
# a change reaches every new order within this time.
MAX_AGE_SECONDS = 5


class SsmFlowWeights(FlowWeightsSource):
    def __init__(self, parameter_name: str, client: Any, max_age: int = MAX_AGE_SECONDS) -> None:
        self._name = parameter_name
        self._max_age = max_age
        self._provider = SSMProvider(boto3_client=client)

    def current(self) -> FlowWeights:
        try:
            document = self._provider.get(self._name, transform="json", max_age=self._max_age)
        except TransformParameterError as error:
            raise InvalidFlowWeightsError(f"{self._name} is not JSON: {error}") from None
        except GetParameterError as error:
            raise ConfigurationError(f"cannot read {self._name}: {error}") from error
        try:
            return FlowWeights.parse(document)
        except InvalidFlowWeightsError as error:
            raise InvalidFlowWeightsError(f"{self._name}: {error}") from None
