import type { Route } from './router.ts'

/**
 * What one route may hold at once: with `max_concurrent` set, at most that many of its exchanges are in flight
 * (from the moment the route is matched until the response ends); one more is answered 503 ROUTE_BUSY at once,
 * so a flood on one route (a public one, say) cannot take every connection to an upstream that other routes
 * share. Counted per process, by route name (a reload keeps the counts of routes that keep their name).
 */
export interface RouteSlots {
  /** Takes a slot of `route`: the function that gives it back, or undefined when the route is full. */
  acquire(route: Route): (() => void) | undefined
}

const free = () => {}

export function routeSlots(): RouteSlots {
  const inFlight = new Map<string, number>()
  return {
    acquire(route) {
      if (route.max_concurrent === undefined) return free
      const n = inFlight.get(route.name) ?? 0
      if (n >= route.max_concurrent) return undefined
      inFlight.set(route.name, n + 1)
      let released = false
      return () => {
        if (released) return
        released = true
        const left = (inFlight.get(route.name) ?? 1) - 1
        if (left > 0) inFlight.set(route.name, left)
        else inFlight.delete(route.name)
      }
    },
  }
}
