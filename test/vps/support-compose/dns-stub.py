"""Stand-in for Docker's embedded DNS server (127.0.0.11:53 in every container
of a user-defined network), which nginx.conf's `resolver` asks for the
upstream service names: every A query is answered with 127.0.0.1, where the
test runs the stand-in upstreams; other types get an empty answer. Runs in
the test container's own network namespace, so it reaches nothing else.
"""

import socket
import struct

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.11", 53))
while True:
    query, client = sock.recvfrom(512)
    ident, _flags, qdcount = struct.unpack(">HHH", query[:6])
    end = 12
    while query[end] != 0:
        end += query[end] + 1
    question = query[12 : end + 5]
    qtype = struct.unpack(">H", query[end + 1 : end + 3])[0]
    answers = 1 if qtype == 1 and qdcount == 1 else 0
    reply = struct.pack(">HHHHHH", ident, 0x8180, 1, answers, 0, 0) + question
    if answers:
        reply += struct.pack(">HHHLH", 0xC00C, 1, 1, 10, 4) + socket.inet_aton("127.0.0.1")
    sock.sendto(reply, client)
