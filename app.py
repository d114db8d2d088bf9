"""The orders system's Chalice app: wiring only.

- the orders REST API (API Gateway, or ``chalice local``);
- choreography: SQS handlers, one per service reacting to order events;
- orchestration: Lambda tasks run by the order-flow state machine;
- the outbox relay: publishes what the table recorded (and starts orchestrated orders);
- the sweeper: every minute, resumes or ends the orders waiting past their deadline.
The business steps they share live in ``chalicelib/orders``. Which deployment's
queues the handlers consume is read here, once, from the stage's environment.
"""

from chalicelib.application import Wiring, create_app

app = create_app(Wiring.from_environment())

# Lambda runs each SQS handler as app.<name>: Chalice's handler string for them.
restaurant_notifier = app.handler_map["restaurant_notifier"]
restaurant_deadline_checker = app.handler_map["restaurant_deadline_checker"]
user_notifier = app.handler_map["user_notifier"]
promotions = app.handler_map["promotions"]
relay_recorded_events = app.handler_map["relay_recorded_events"]
sweeper = app.handler_map["sweeper"]
