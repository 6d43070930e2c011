"""A libzmq hashblock publisher that sends what Bitcoin Core sends.

Run by TestZMQLibzmq with Debian's python3 and python3-zmq (libzmq5);
scripts/zmq.sh finds or installs them. It mirrors Core's
src/zmq/zmqpublishnotifier.cpp:

  * a ZMQ_PUB socket with ZMQ_SNDHWM 1000 (Core's -zmqpubhashblockhwm
    default) and TCP keepalive on, bound to the endpoint;
  * CZMQPublishHashBlockNotifier::NotifyBlock copies the block hash
    reversed (data[31 - i] = hash.begin()[i]): the RPC byte order;
  * SendZmqMessage sends three frames, the topic "hashblock", the 32 bytes
    and WriteLE32(nSequence), then increments the topic's sequence, which
    starts at 0 with every process;
  * at shutdown the socket is closed with ZMQ_LINGER 0.

usage: python3 zmqpub.py ENDPOINT   (e.g. tcp://127.0.0.1:*)

It prints "bound <endpoint> libzmq <version>" once bound, then reads
commands on stdin, one a line, and answers each with one line:

  block <hash>        publish a hashblock for <hash> (64 hex digits, the
                      hash's bytes in memory order, as a uint256 holds them)
                      with the next sequence number; answers "sent <seq>"
  skip <n>            lose n sequence numbers, as when messages are dropped
                      at the high-water mark; answers "skipped <n>"
  bad                 publish a malformed hashblock (a 3-byte hash) without
                      using a sequence number; answers "sent bad"

and exits when stdin closes.
"""

import struct
import sys

import zmq


def main():
    endpoint = sys.argv[1]
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, 1000)
    sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
    sock.bind(endpoint)
    bound = sock.getsockopt(zmq.LAST_ENDPOINT).decode()
    print("bound %s libzmq %s" % (bound, zmq.zmq_version()), flush=True)
    seq = 0
    for line in sys.stdin:
        cmd = line.split()
        if len(cmd) == 2 and cmd[0] == "block":
            mem = bytes.fromhex(cmd[1])
            if len(mem) != 32:
                print("error: hash of %d bytes" % len(mem), flush=True)
                continue
            data = bytearray(32)
            for i in range(32):
                data[31 - i] = mem[i]
            sock.send_multipart([b"hashblock", bytes(data), struct.pack("<I", seq & 0xFFFFFFFF)])
            print("sent %d" % seq, flush=True)
            seq += 1
        elif cmd == ["bad"]:
            sock.send_multipart([b"hashblock", b"\x01\x02\x03", struct.pack("<I", seq & 0xFFFFFFFF)])
            print("sent bad", flush=True)
        elif len(cmd) == 2 and cmd[0] == "skip":
            seq += int(cmd[1])
            print("skipped %s" % cmd[1], flush=True)
        else:
            print("error: unknown command %r" % line, flush=True)
    sock.setsockopt(zmq.LINGER, 0)
    sock.close()
    ctx.term()


if __name__ == "__main__":
    main()
