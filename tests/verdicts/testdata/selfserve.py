import socket, os, sys, tempfile
out = []
# TCP listener of our own, on loopback
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(4)
c = socket.create_connection(l.getsockname()); out.append("tcp-self ok")
# wildcard bind, reached through loopback
w = socket.socket(); w.bind(("0.0.0.0", 0)); w.listen(4)
c2 = socket.create_connection(("127.0.0.1", w.getsockname()[1])); out.append("tcp-wildcard ok")
# UDP bound by us
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
uc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); uc.connect(u.getsockname()); out.append("udp-self ok")
# Unix path and abstract
d = tempfile.mkdtemp(); p = os.path.join(d, "s")
us = socket.socket(socket.AF_UNIX); us.bind(p); us.listen(1)
os.chdir(d); ucl = socket.socket(socket.AF_UNIX); ucl.connect("s"); out.append("unix-relative ok")
ab = socket.socket(socket.AF_UNIX); ab.bind("\0selfserve-test"); ab.listen(1)
abc = socket.socket(socket.AF_UNIX); abc.connect("\0selfserve-test"); out.append("unix-abstract ok")
# a listener in a child process (the tree)
r, wp = os.pipe()
pid = os.fork()
if pid == 0:
    cl = socket.socket(); cl.bind(("127.0.0.1", 0)); cl.listen(1)
    os.write(wp, str(cl.getsockname()[1]).encode()); cl.accept(); os._exit(0)
port = int(os.read(r, 16))
socket.create_connection(("127.0.0.1", port)); out.append("tcp-child ok")
os.waitpid(pid, 0)
# outside listener
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2]))); out.append("outside CONNECTED")
except OSError as e:
    out.append("outside " + os.strerror(e.errno))
print("\n".join(out))
