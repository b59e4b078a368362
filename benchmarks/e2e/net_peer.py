#!/usr/bin/env python3
"""Host side of the guest agent's `net:<host_ip>:<port>:<bytes>` check.

Listens on HOST:PORT, accepts one connection, receives BYTES of the guest's
stream (guest->host seed), checks their wrapping 64-bit word sum, sends BYTES
of the host->guest stream back, waits for the guest to close. Same protocol as
HostNetSide() in tests/linux/linux_virtio_test.cc. Prints one line:
  net-peer: received=<n> sent=<n> rx_sum=<hex> rx_sum_ok=<0|1> error=<text|none>
Usage: net_peer.py HOST PORT BYTES TIMEOUT_S   (run inside the network namespace)
"""
import array
import socket
import sys
import time

MUL = 0x9E3779B97F4A7C15
SEED_TX = 0x6865617274687478  # guest -> host
SEED_RX = 0x6865617274687278  # host -> guest
M64 = (1 << 64) - 1


def pattern(seed, off, size):
    a = array.array("Q", (((off + 8 * i) * MUL + seed) & M64 for i in range(size // 8)))
    if sys.byteorder != "little":
        a.byteswap()
    return a.tobytes()


def pattern_sum(seed, size):
    n = size // 8
    # sum_{i<n} (8i*MUL + seed) = n*seed + MUL*8*n(n-1)/2
    return (n * seed + MUL * 8 * (n * (n - 1) // 2)) & M64


def main():
    host, port, nbytes, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    reply = pattern(SEED_RX, 0, nbytes)  # before listening: not on the clock
    expect_sum = pattern_sum(SEED_TX, nbytes)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1)
    print("net-peer: listening", flush=True)
    deadline = time.monotonic() + timeout
    received = sent = 0
    got = bytearray()
    err = "none"
    abandoned = 0
    try:
        while True:
            # The guest bounds each connect attempt (5 s); on a slow (interpreted) guest an
            # attempt can time out after the host accepted it, and the guest closes it and
            # retries: take the next connection then.
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no connection delivered data")
            ls.settimeout(left)
            conn, _ = ls.accept()
            conn.settimeout(120)
            got = bytearray()
            received = 0
            err = "none"
            while received < nbytes:
                chunk = conn.recv(min(1 << 20, nbytes - received))
                if not chunk:
                    err = "connection-closed"
                    break
                got += chunk
                received += len(chunk)
            if err != "none" and received == 0:
                abandoned += 1
                conn.close()
                continue
            break
        if err == "none":
            conn.sendall(reply)
            sent = len(reply)
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(4096):
                pass
        conn.close()
    except Exception as e:  # noqa: BLE001
        err = type(e).__name__ + ":" + str(e).replace(" ", "_")
    ls.close()
    s = 0
    if received == nbytes:
        a = array.array("Q", bytes(got))
        if sys.byteorder != "little":
            a.byteswap()
        s = sum(a) & M64
    print(f"net-peer: received={received} sent={sent} rx_sum={s:016x} "
          f"rx_sum_ok={int(s == expect_sum and received == nbytes)} abandoned={abandoned} error={err}", flush=True)


if __name__ == "__main__":
    main()
