"""tests/lib/tls_http_server.py - the Python TLS peers' common ending: serve
an http.server handler class over TLS on 127.0.0.1:PORT with the test
certificate tlspeer.sh made in DIR (srv.pem, srv.key), one thread per
connection, until killed."""
import os
import ssl
from http.server import ThreadingHTTPServer


def serve(handler, port, certdir):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certdir, "srv.pem"), os.path.join(certdir, "srv.key"))
    srv = ThreadingHTTPServer(("127.0.0.1", int(port)), handler)
    srv.daemon_threads = True
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()
