"""A Django smoke test: one project, served through mongoose_py.wsgi and mongoose_py.asgi."""
import django
import pytest
import requests
from django.conf import settings
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path

from web_helpers import asgi_server, wsgi_server


def hello(request):
    return HttpResponse("hello %s" % request.GET.get("who", "django"))


def echo(request):
    return JsonResponse({"method": request.method, "body": request.body.decode(),
                         "ctype": request.content_type, "script": request.META.get("SCRIPT_NAME", "")})


def stream(request):
    return StreamingHttpResponse(b"part%d;" % i for i in range(3))


# the same sync-iterator view serves both interfaces; Django warns about it under ASGI
pytestmark = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")

urlpatterns = [path("hello", hello), path("echo", echo), path("stream", stream)]

if not settings.configured:
    settings.configure(DEBUG=False, ROOT_URLCONF=__name__, ALLOWED_HOSTS=["127.0.0.1", "localhost"],
                       SECRET_KEY="test-only", MIDDLEWARE=[], INSTALLED_APPS=[], USE_TZ=True)
    django.setup()


def check(base):
    assert requests.get(base + "/hello?who=mg", timeout=10).text == "hello mg"
    r = requests.post(base + "/echo", data=b'{"a": 1}', headers={"Content-Type": "application/json"}, timeout=10)
    assert r.json()["method"] == "POST" and r.json()["body"] == '{"a": 1}'
    assert r.json()["ctype"] == "application/json"
    r = requests.get(base + "/stream", timeout=10)
    assert r.content == b"part0;part1;part2;" and r.headers["Transfer-Encoding"] == "chunked"
    assert requests.get(base + "/missing", timeout=10).status_code == 404


def test_django_under_wsgi():
    from django.core.wsgi import get_wsgi_application
    with wsgi_server(get_wsgi_application()) as port:
        check("http://127.0.0.1:%d" % port)


def test_django_under_asgi():
    from django.core.asgi import get_asgi_application
    with asgi_server(get_asgi_application()) as port:
        check("http://127.0.0.1:%d" % port)
