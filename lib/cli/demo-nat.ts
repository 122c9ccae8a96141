/** The tutorial's two NAT steps (masquerade, port forward 8080 -> 80). Waits for branch nat. */
import type { Demo, DemoStep } from './demo';

export function demoNatSteps(demo: Demo): DemoStep[] {
  void demo;
  return [];
}
