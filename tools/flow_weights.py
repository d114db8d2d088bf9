"""Show or change which flow new orders get when they name none, without a deploy.

    python -m tools.flow_weights [--stage local] [--path chalice|sam] show
    python -m tools.flow_weights [--stage local] [--path chalice|sam] \
        set choreography=90 orchestration=10

The weights live in the SSM parameter ``/<prefix>/flow-weights`` of the deployment; the API
keeps what it read for at most 5 s. Orders already placed keep their flow. The last line of
stdout is the weights in force, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import boto3

from chalicelib.orders.flow_choice import FlowWeights, InvalidFlowWeightsError
from deploy import template
from deploy.stages import Deployment, DeployPath, aws_environment, load_stage


def parse_assignments(assignments: list[str]) -> FlowWeights:
    document: dict[str, object] = {}
    for assignment in assignments:
        name, separator, weight = assignment.partition("=")
        if not separator or not weight.strip().isdigit():
            raise InvalidFlowWeightsError(f"expected <flow>=<whole number>, not {assignment!r}")
        document[name.strip()] = int(weight)
    return FlowWeights.parse(document)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.flow_weights",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stage", default="local")
    parser.add_argument("--path", choices=[p.value for p in DeployPath], default="chalice")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("show", help="print the weights in force")
    change = commands.add_parser("set", help="replace the weights (every flow, e.g. x=90 y=10)")
    change.add_argument("weights", nargs="+", metavar="FLOW=WEIGHT")
    args = parser.parse_args(argv)

    stage = load_stage(args.stage)
    env = aws_environment()
    if stage.is_local and not env.get("AWS_ENDPOINT_URL"):
        parser.error(f"stage {stage.name} is on the local cloud: set AWS_ENDPOINT_URL")
    os.environ.update(env)
    name = template.flow_weights_parameter_name(Deployment(stage, DeployPath(args.path)))
    ssm = boto3.client("ssm")
    try:
        if args.command == "set":
            weights = parse_assignments(args.weights)
            value = json.dumps(weights.to_document())
            ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
            print(f"{name} set; new orders get it within 5 s", file=sys.stderr)
        current = ssm.get_parameter(Name=name)["Parameter"]["Value"]
        weights = FlowWeights.parse(json.loads(current))
    except ValueError as error:  # not JSON, or not weights
        parser.error(f"{name}: {error}")
    except ssm.exceptions.ParameterNotFound:
        parser.error(f"{name} does not exist: is stage {stage.name} deployed ({args.path} path)?")
    print(json.dumps(weights.to_document()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
