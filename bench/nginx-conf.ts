/**
 * The part of a benchmark nginx's configuration that every nginx row shares: in the foreground under the bench's
 * own process, a temporary prefix for its pid, logs and temp directories (so it never touches the system's),
 * and an access log line per request, as every proxy in the table writes one. What is proxied, and how, is the
 * caller's `http` block body (bench/nginx.ts, bench/nginx-forward-auth.ts).
 *
 * @param prefix the temporary directory nginx runs in (its `logs/` must exist)
 * @param workers worker processes (1 for the rows that compare with one Node process)
 * @param http the directives inside `http { … }` after the shared ones
 */
export function nginxConf(prefix: string, workers: number, http: string): string {
  const body = http.trim().split('\n').map((line) => `  ${line}`).join('\n')
  return `
daemon off;
worker_processes ${workers};
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log ${prefix}/logs/access.log;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
${body}
}
`
}
