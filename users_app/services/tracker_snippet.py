"""The HTML an environment's site pastes into every page: Heap's classic snippet, loading Cairn's tracker."""

import json

from django.conf import settings

from config.kernel.static_files import TRACKER_STATIC_NAME
from users_app.models import Environment

# Heap's loader, with the script's address pointing at this Cairn server. Calls made before the tracker
# loads are queued in the `window.heap` array and replayed in order by the tracker.
_SNIPPET = """<script type="text/javascript">
  window.heap=window.heap||[],heap.load=function(e,t){window.heap.appid=e,window.heap.config=t=t||{};\
var r=document.createElement("script");r.type="text/javascript",r.async=!0,\
r.src=%(script)s;\
var a=document.getElementsByTagName("script")[0];a.parentNode.insertBefore(r,a);for(var n=function(e){return \
function(){heap.push([e].concat(Array.prototype.slice.call(arguments,0)))}},p=["addEventProperties",\
"addUserProperties","clearEventProperties","identify","resetIdentity","removeEventProperty",\
"setEventProperties","track","unsetEventProperty"],o=0;o<p.length;o++)heap[p[o]]=n(p[o])};
  heap.load(%(app_id)s, {host: %(host)s});
</script>"""


def js_string(value: str) -> str:
    """A JavaScript string literal that is also safe inside an HTML <script> element."""
    text = json.dumps(str(value))
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


def tracker_snippet(environment: Environment, request) -> str:
    """The HTML to paste into every page of the tracked site, for this environment and this server."""
    host = request.build_absolute_uri("/").rstrip("/")
    script = f"{settings.STATIC_URL.rstrip('/')}/{TRACKER_STATIC_NAME}"
    if not script.startswith(("http://", "https://", "//")):
        script = host + script
    return _SNIPPET % {"app_id": js_string(environment.app_id), "host": js_string(host), "script": js_string(script)}
