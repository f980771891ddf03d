# dnsleak.py MODE NAME: ask 10.231.0.2:53 for NAME (type A) over a socket
# the DNS forwarder may not be able to carry, and print what came back:
# "rcode N answers M", "no answer", or the error.
#   udp-noport  UDP bound to 10.231.0.1 with IP_BIND_ADDRESS_NO_PORT
#   tcp-noport  TCP likewise
#   mptcp       MPTCP (falls back to TCP against a plain server)
#   setuid      UDP made as root, sent from after setuid(65534)
#   device      UDP bound to veth0 with SO_BINDTODEVICE
#   pktinfo     UDP sendmsg with IP_PKTINFO naming veth0
#   exhaust     6000 UDP sockets send a lookup of good.web.test first
#   udp         a plain unconnected UDP socket (the control)
import os, socket, struct, sys, time

mode, name = sys.argv[1], sys.argv[2]
RESOLVER = ("10.231.0.2", 53)
IP_BIND_ADDRESS_NO_PORT = 24
IPPROTO_MPTCP = 262


def query(qname, qid=0x1234):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in qname.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 1, 1)


def show(b):
    if len(b) < 12:
        print("short answer")
        return
    flags, qd, an = struct.unpack(">HHH", b[2:8])
    print("rcode", flags & 0xF, "answers", an)


def udp(s):
    s.settimeout(3)
    s.sendto(query(name), RESOLVER)
    try:
        show(s.recvfrom(4096)[0])
    except socket.timeout:
        print("no answer")


def tcp(s):
    s.settimeout(3)
    s.connect(RESOLVER)
    m = query(name)
    s.sendall(struct.pack(">H", len(m)) + m)
    try:
        n = struct.unpack(">H", s.recv(2))[0]
        show(s.recv(n))
    except (socket.timeout, struct.error):
        print("no answer")


try:
    if mode == "udp-noport" or mode == "tcp-noport":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if mode == "udp-noport" else socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind(("10.231.0.1", 0))
        udp(s) if mode == "udp-noport" else tcp(s)
    elif mode == "device":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"veth0")
        udp(s)
    elif mode == "pktinfo":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        info = struct.pack("=I4s4s", socket.if_nametoindex("veth0"), socket.inet_aton("10.231.0.1"), bytes(4))
        s.sendmsg([query(name)], [(socket.IPPROTO_IP, 8, info)], 0, RESOLVER)  # IP_PKTINFO
        try:
            show(s.recvfrom(4096)[0])
        except socket.timeout:
            print("no answer")
    elif mode == "mptcp":
        tcp(socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP))
    elif mode == "setuid":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        os.setuid(65534)
        udp(s)
    elif mode == "exhaust":
        for i in range(6000):  # distinct ports past the front's 4096 admissions
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.sendto(query("good.web.test", i), RESOLVER)
                except OSError:
                    pass
        time.sleep(1.5)  # the server drains the burst
        udp(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    else:
        udp(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
except OSError as e:
    print(type(e).__name__, e.errno)
