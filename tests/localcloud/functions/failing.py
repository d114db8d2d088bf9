"""Raises a domain error, to check Lambda's error shape."""


class OrderRejectedError(Exception):
    pass


def handler(event, context):
    reject(event.get("order_id", "unknown"))


def reject(order_id):
    raise OrderRejectedError(f"order {order_id} rejected")
