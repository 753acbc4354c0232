# Binds 127.0.0.1:$PORT with SO_REUSEPORT, then runs the given command with
# the listening socket inherited (its number in LISTEN_FD): two tasks of the
# backend then serve the same port while a Swarm start-first update overlaps
# them (Node 20's net module cannot set SO_REUSEPORT itself).
import os
import socket
import sys

port = int(os.environ.get("PORT", "3001"))
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
sock.bind(("127.0.0.1", port))
sock.listen(511)
os.set_inheritable(sock.fileno(), True)
os.environ["LISTEN_FD"] = str(sock.fileno())
os.execvp(sys.argv[1], sys.argv[1:])
