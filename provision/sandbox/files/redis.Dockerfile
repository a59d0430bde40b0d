# Stand-in for the official redis:latest, built from Debian's redis-server
# because this test bed has no registry. Same calling convention as the
# official image: compose's `command: ["redis-server", "--appendonly", "yes"]`
# replaces CMD, and the entrypoint adds the defaults the official image has
# baked into its config (protected mode off, listen everywhere, data in /data).
ARG SUITE=bookworm
FROM provision/debian-base:${SUITE}
LABEL io.provision.sandbox=1
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data \
 && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
