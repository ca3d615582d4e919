# hotline: one image for the relay and the endpoints.
# Runs as an unprivileged user; the root filesystem can be mounted read-only,
# with state under /data (a volume) and the network directory under /etc/hotline.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/hotline
COPY pyproject.toml README.md ./
COPY hotline ./hotline
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin hotline \
    && mkdir -p /data && chown hotline:hotline /data

USER hotline
VOLUME ["/data"]
# The relay listens on 8700 and an endpoint on 8800 by default; both answer /healthz.
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import sys, urllib.request; \
    port = '8700' if 'relay' in open('/proc/1/cmdline').read() else '8800'; \
    sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz').status != 200)"
ENTRYPOINT ["hotline"]
CMD ["--help"]
