"""Key names built in bulk are the names built one by one."""

from __future__ import annotations

from tracker.keys import Keys


def test_a_batchs_recipient_keys_are_each_recipients_own() -> None:
    keys = Keys("trk")
    recipients = ["r1", "", "a:b{c}%d", "+49 151 1234567", "r1"]
    bulk = keys.recipients_clicks_and_orders("w:s{1}", recipients)
    one_by_one = [name for r in recipients for name in
                  (keys.recipient_clicks("w:s{1}", r), keys.recipient_orders("w:s{1}", r))]
    assert bulk == one_by_one
    # (the escaped parts keep every key in the workspace's join slot)
    assert all(name.startswith("trk:{j:w%3As%7B1%7D}:") for name in bulk)
