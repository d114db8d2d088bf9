"""Deploys the orders system: to the local cloud or to an AWS account, two ways.

- ``python -m deploy up``: the resources Chalice does not manage (tables, topics,
  queues with dead-letter queues, subscriptions, the state machine) with boto3,
  and the functions and API with ``chalice deploy``.
- ``python -m deploy sam-up``: one SAM template from ``chalice package
  --merge-template``, deployed through CloudFormation.
Both are repeatable and have a matching ``down``.
"""
