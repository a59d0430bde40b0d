# Stand-in for openresty/openresty:latest from Debian's nginx + Lua packages.
# OpenResty has Lua compiled in; Debian loads it as a module, so the container
# starts nginx on a small wrapper config that loads the modules and then
# includes the config file at the path the real image reads.
ARG SUITE=bookworm
FROM provision/debian-base:${SUITE}
LABEL io.provision.sandbox=1
ENV DEBIAN_FRONTEND=noninteractive
# lua-nginx-redis is one Lua file, but Debian makes it depend on nginx-extras (perl, image
# filters, GeoIP: 150 MB the stand-in never loads), so its file is unpacked without it.
# `apt-get clean` drops the downloaded .debs: every `up` on a host that cannot pull sends
# this image over SSH, and each megabyte left here travels every time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      nginx-light libnginx-mod-http-lua lua-resty-core \
      lua-resty-lrucache lua-nginx-dns lua-cjson curl ca-certificates libc-bin \
 && cd /tmp && apt-get download lua-nginx-redis && dpkg-deb -x lua-nginx-redis_*.deb / \
 && rm -f lua-nginx-redis_*.deb && cd / \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && ln -s ../nginx/redis.lua /usr/share/lua/5.1/resty/redis.lua \
 && mkdir -p /usr/local/openresty/nginx/conf /usr/local/openresty/nginx/logs \
             /usr/local/openresty/lua /var/log/nginx /var/lib/nginx/body \
 && ln -sf /dev/stdout /usr/local/openresty/nginx/logs/access.log \
 && ln -sf /dev/stderr /usr/local/openresty/nginx/logs/error.log \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log
COPY openresty-compat.conf /etc/nginx/openresty-compat.conf
COPY openresty-nginx.conf /usr/local/openresty/nginx/conf/nginx.conf
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;", "-c", "/etc/nginx/openresty-compat.conf"]
