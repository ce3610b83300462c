"""One port for HTTP and websockets.

HTTP goes to Django's WSGI application through a2wsgi's thread pool (config/bridge.py): one
thread hop per request, not one per middleware as under Django's own ASGI handler. Header names
go out in their usual casing (config/headers.py), which is why the server runs uvicorn's h11
protocol. Websockets go to Channels, behind the session authentication and the allowed-hosts
check.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
WEB_THREADS = int(os.environ.get("WEB_THREADS", "16"))
# A PostgreSQL connection ready for every request thread (a worker or a command keeps one),
# opened before the server listens (common/pool.py).
os.environ.setdefault("DATABASE_POOL_MIN_SIZE", str(WEB_THREADS))

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi = get_asgi_application()  # sets Django up before anything imports models

from common.pool import open_database_pool  # noqa: E402
from common.warm_up import compile_lazy_patterns  # noqa: E402

open_database_pool()
compile_lazy_patterns()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config.bridge import WSGIBridge  # noqa: E402
from config.headers import CanonicalHeaders  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from config.wsgi import application as wsgi_application  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": CanonicalHeaders(
            WSGIBridge(wsgi_application, workers=WEB_THREADS)  # type: ignore[arg-type]
        ),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
