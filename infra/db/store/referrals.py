"""Referral codes (one per customer, created on first use) and the orders they brought."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select

from app.records import ReferralFigures
from infra.db.models import Order, ReferralCode, ReferralConversion, StoredEvent
from infra.db.store._base import Repo

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and typed
_CODE_LENGTH = 8


def _new_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))


class Referrals(Repo):
    def code_for(self, customer_id: str, journey_id: str | None) -> str:
        """The customer's referral code, created on first use (random, unguessable, retried on
        collision). A customer has one code whichever journey asks first."""
        mine = select(ReferralCode.code).where(ReferralCode.customer_id == customer_id)
        existing = self.s.scalar(mine)
        if existing is not None:
            return existing
        for _ in range(8):
            code = _new_code()
            stmt = self.insert_into(ReferralCode).values(
                code=code, customer_id=customer_id, journey_id=journey_id
            )
            stmt = stmt.on_conflict_do_nothing()  # either unique: the code, or the customer's one code
            if self.s.execute(stmt.returning(ReferralCode.code)).first() is not None:
                return code
            existing = self.s.scalar(mine)
            if existing is not None:  # another transaction created it meanwhile
                return existing
        raise RuntimeError("could not find a free referral code after 8 tries")

    def owner(self, code: str) -> str | None:
        return self.s.scalar(
            select(ReferralCode.customer_id).where(ReferralCode.code == code.strip().upper())
        )

    def attribute(self, code: str, order_id: str, referred_customer_id: str) -> bool:
        """Credit an order to the code's owner. Once per order; unknown codes and self-referrals are
        ignored. True if the conversion was recorded now."""
        owner = self.owner(code)
        if owner is None or owner == referred_customer_id:
            return False
        stmt = self.insert_into(ReferralConversion).values(
            code=code.strip().upper(), order_id=order_id, referred_customer_id=referred_customer_id
        )
        new = stmt.on_conflict_do_nothing(index_elements=["order_id"]).returning(ReferralConversion.id)
        return self.s.execute(new).first() is not None

    def figures(self) -> ReferralFigures:
        conv = ReferralConversion
        clicks = {
            cid: int(n)
            for cid, n in self.s.execute(
                select(StoredEvent.customer_id, func.count())
                .where(StoredEvent.type == "referral.clicked")
                .group_by(StoredEvent.customer_id)
            )
        }
        conversions = {
            code: (int(n), float(amount or 0))
            for code, n, amount in self.s.execute(
                select(conv.code, func.count(conv.id), func.sum(Order.total))
                .select_from(conv)
                .outerjoin(Order, Order.id == conv.order_id)
                .group_by(conv.code)
            )
        }
        codes = list(
            self.s.execute(select(ReferralCode.code, ReferralCode.customer_id, ReferralCode.journey_id))
        )
        return ReferralFigures(clicks, conversions, [(c, o, j) for c, o, j in codes])
