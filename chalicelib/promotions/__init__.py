"""Promotions: a separate bounded context that only listens to order events."""
