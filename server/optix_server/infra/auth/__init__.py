"""Authentication shared by every service: JWT keys and tokens, the interceptor, the principal.

Import the submodules directly (`optix_server.infra.auth.principal` ...): infra.settings imports
`config`, so this package must not import anything heavier at import time.
"""
