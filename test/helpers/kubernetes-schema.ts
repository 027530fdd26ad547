import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler'
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Namespace } from 'kubernetes-models/v1/Namespace'
import { Secret } from 'kubernetes-models/v1/Secret'
import { Service } from 'kubernetes-models/v1/Service'

/**
 * Checks Kubernetes objects against the API's OpenAPI schemas as compiled by `kubernetes-models` (generated
 * from Kubernetes 1.36's OpenAPI document; the ServiceMonitor from `@kubernetes-models/prometheus-operator`).
 * Those validators check types, required fields and enums but let unknown fields through, as the API
 * server's lenient decoding does; `kubectl apply` (strict field validation since 1.27) refuses them, and so
 * does this: every field the validator never read is not in the schema.
 */
const MODELS: Record<string, { prototype: { validate(): void } }> = Object.fromEntries(
  [ConfigMap, Deployment, HorizontalPodAutoscaler, Ingress, Namespace, NetworkPolicy, PodDisruptionBudget, Secret, Service, ServiceMonitor]
    .map((m) => [`${m.apiVersion}/${m.kind}`, m]),
)

/** `value`, seen through proxies that record the path of every own property read. */
function recording(value: unknown, path: string, read: Set<string>): unknown {
  if (!value || typeof value !== 'object') return value
  return new Proxy(value, {
    get(target, key, receiver) {
      const v: unknown = Reflect.get(target, key, receiver)
      if (typeof key !== 'string' || !Object.hasOwn(target, key)) return v
      read.add(`${path}/${key}`)
      return recording(v, `${path}/${key}`, read)
    },
  })
}

function unread(value: unknown, path: string, read: ReadonlySet<string>, out: string[]): void {
  if (!value || typeof value !== 'object') return
  for (const [key, v] of Object.entries(value)) {
    const p = `${path}/${key}`
    if (read.has(p)) unread(v, p, read, out)
    else out.push(p)
  }
}

/** Every problem with one object: no schema for its kind, a schema violation, a field the schema does not have. */
export function kubernetesSchemaProblems(object: { apiVersion?: unknown; kind?: unknown }): string[] {
  const model = MODELS[`${String(object.apiVersion)}/${String(object.kind)}`]
  if (!model) return [`no schema for ${String(object.apiVersion)} ${String(object.kind)}: add its model to test/helpers/kubernetes-schema.ts`]
  const problems: string[] = []
  const read = new Set<string>()
  try {
    model.prototype.validate.call(recording(object, '', read))
  } catch (err) {
    problems.push((err as Error).message)
  }
  const unknown: string[] = []
  unread(object, '', read, unknown)
  return [...problems, ...unknown.map((p) => `${p}: unknown field`)]
}
