"""store.connect's single-server client packs commands with hiredis, in C, on
any redis-py: older releases' asyncio connection packs in Python (a quarter
of the batch API's time), newer ones use hiredis themselves."""

from redis.connection import HiredisRespSerializer

from tracker.store import connect


def test_the_client_packs_commands_with_hiredis() -> None:
    client = connect("redis://127.0.0.1:1/0")  # (never connects)
    conn = client.connection_pool.make_connection()
    packer = getattr(conn, "_serializer", None) or getattr(conn, "_command_packer", None)
    assert isinstance(packer, HiredisRespSerializer)
    packed = b"".join(conn.pack_command("HSET", "k", "f", 1, "é"))
    assert packed == (b"*5\r\n$4\r\nHSET\r\n$1\r\nk\r\n$1\r\nf\r\n$1\r\n1\r\n"
                      b"$2\r\n\xc3\xa9\r\n")
