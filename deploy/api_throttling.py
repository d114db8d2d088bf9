"""The stage's API throttling (``deploy/stages.json``, ``api_throttling``) on both deploy paths.

The SAM path declares it in the template (the REST API's ``MethodSettings``). Chalice has no
throttling setting, so after ``chalice deploy`` the deploy sets it on the deployed API stage
(``UpdateStage``, the same default method settings for every route) and reads it back. It checks
them on every deploy: the local cloud drops a stage's method settings when ``chalice deploy``
makes a new deployment of it, and a stage changed by hand is put back.
"""

from __future__ import annotations

from typing import Any

from deploy.stages import ApiThrottling

# Every resource and method of the stage: API Gateway's key for the stage's default settings.
EVERY_METHOD = "*/*"


def method_settings(throttling: ApiThrottling) -> list[dict[str, Any]]:
    """For the SAM template's ``AWS::Serverless::Api``: one setting for every route."""
    return [
        {
            "ResourcePath": "/*",
            "HttpMethod": "*",
            "ThrottlingRateLimit": throttling.rate_per_second,
            "ThrottlingBurstLimit": throttling.burst,
        }
    ]


def deployed(apigateway: Any, rest_api_id: str, stage_name: str) -> ApiThrottling | None:
    """The throttling the deployed stage applies to every route; None if it sets none."""
    stage = apigateway.get_stage(restApiId=rest_api_id, stageName=stage_name)
    settings = stage.get("methodSettings", {}).get(EVERY_METHOD, {})
    if "throttlingRateLimit" not in settings or "throttlingBurstLimit" not in settings:
        return None
    rate, burst = settings["throttlingRateLimit"], settings["throttlingBurstLimit"]
    return ApiThrottling(int(rate), int(burst))


def apply(apigateway: Any, rest_api_id: str, stage_name: str, throttling: ApiThrottling) -> bool:
    """Set the stage's throttling unless it is set already; True if it changed. Refuses to
    return until the stage reads back what was set."""
    if deployed(apigateway, rest_api_id, stage_name) == throttling:
        return False
    apigateway.update_stage(
        restApiId=rest_api_id,
        stageName=stage_name,
        patchOperations=[
            {
                "op": "replace",
                "path": f"/{EVERY_METHOD}/throttling/rateLimit",
                "value": str(throttling.rate_per_second),
            },
            {
                "op": "replace",
                "path": f"/{EVERY_METHOD}/throttling/burstLimit",
                "value": str(throttling.burst),
            },
        ],
    )
    applied = deployed(apigateway, rest_api_id, stage_name)
    if applied != throttling:
        raise SystemExit(
            f"API stage {stage_name} of {rest_api_id}: throttling reads back as {applied}, "
            f"not the stage's {throttling}"
        )
    return True
