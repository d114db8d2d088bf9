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
