"""The orders system's Chalice app: wiring only.

- ``api``: the orders REST API (API Gateway, or ``chalice local``).
- ``choreography``: SQS handlers, one per service reacting to order events.
- ``orchestration``: Lambda tasks run by the order-flow state machine.
The business steps they share live in ``chalicelib/orders``.
"""

from chalice import Chalice

from chalicelib.entrypoints.api import api
from chalicelib.entrypoints.choreography import choreography
from chalicelib.entrypoints.orchestration import orchestration

app = Chalice(app_name="orders")
app.register_blueprint(api)
app.register_blueprint(choreography)
app.register_blueprint(orchestration)
