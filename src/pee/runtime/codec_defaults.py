"""The codec server's defaults, apart from the server (pee.runtime.codec_server) so that the
commands naming them (`pee codec-server --help`, the embedded server's start) do not import
aiohttp: every `pee` command builds the whole parser, and aiohttp took a quarter of `pee run`'s
imports."""

DEFAULT_PORT = 8234
DEFAULT_ORIGIN = "http://127.0.0.1:8233"
# how `server start` hands the embedded codec server its token (not on the command line)
TOKEN_ENV = "PEE_CODEC_AUTH_TOKEN"
