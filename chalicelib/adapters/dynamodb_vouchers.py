"""The promotions context's own table of vouchers (partition key ``voucher_id``)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.promotions.vouchers import Voucher, VoucherRepository


class DynamoDbVoucherRepository(VoucherRepository):
    def __init__(self, table_name: str, client: Any) -> None:
        self._table = table_name
        self._client = client

    def add_once(self, voucher: Voucher) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "voucher_id": {"S": voucher.voucher_id},
                    "customer_id": {"S": voucher.customer_id},
                    "order_id": {"S": voucher.order_id},
                    "amount_cents": {"N": str(voucher.amount_cents)},
                    "issued_at": {"S": voucher.issued_at},
                },
                ConditionExpression="attribute_not_exists(voucher_id)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def for_order(self, order_id: str) -> list[Voucher]:
        answer = self._client.get_item(
            TableName=self._table,
            Key={"voucher_id": {"S": f"order-{order_id}"}},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        if item is None:
            return []
        return [
            Voucher(
                voucher_id=item["voucher_id"]["S"],
                customer_id=item["customer_id"]["S"],
                order_id=item["order_id"]["S"],
                amount_cents=int(item["amount_cents"]["N"]),
                issued_at=item["issued_at"]["S"],
            )
        ]
