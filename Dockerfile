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
# The probe reads pid 1's command line for the port and whether it serves TLS (hotline/healthprobe.py).
HEALTHCHECK --interval=10s --timeout=5s CMD ["python", "-m", "hotline.healthprobe"]
ENTRYPOINT ["hotline"]
CMD ["--help"]
