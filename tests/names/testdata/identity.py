# identity.py PORT [tcp]: as root, look up web.test from UDP port PORT (0:
# any), close the socket, then fork a child that becomes nobody and looks
# up good.web.test from a new socket on the same port; print what the
# child got: "answered" or "no answer". With tcp, both lookups are over TCP
# (from any port). The server's log tells whose queries arrived.
import os, socket, struct, sys

RESOLVER = ("10.231.0.2", 53)
port = int(sys.argv[1])
tcp = sys.argv[2:] == ["tcp"]


def query(name):
    q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 1, 1)


def lookup_tcp(name):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(RESOLVER)
        m = query(name)
        s.sendall(struct.pack(">H", len(m)) + m)
        return "answered" if len(s.recv(2)) == 2 else "no answer"
    except (socket.timeout, OSError):
        return "no answer"
    finally:
        s.close()


def lookup(name):
    if tcp:
        return lookup_tcp(name)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.settimeout(2)
    try:
        s.sendto(query(name), RESOLVER)
        s.recvfrom(4096)
        return "answered"
    except (socket.timeout, OSError):
        return "no answer"
    finally:
        s.close()


lookup("web.test")
pid = os.fork()
if pid == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    print("child:", lookup("good.web.test"), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
