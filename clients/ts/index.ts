// The TypeScript client of the MisyBot Tenancy API: openapi-fetch over the types that
// openapi-typescript generates from api/openapi.yaml into schema.d.ts (`make clients`).
//
//   const api = createTenancyClient("http://127.0.0.1:8080", { headers: { Authorization: `Bearer ${token}` } });
//   const { data, error } = await api.GET("/api/meta-agent/tenants/{tenantId}", { params: { path: { tenantId: "acme" } } });
import createClient, { type ClientOptions } from "openapi-fetch";
import type { components, operations, paths } from "./schema";

export type { components, operations, paths };

/** A client of every path of the document, typed by it. */
export function createTenancyClient(baseUrl: string, options: Omit<ClientOptions, "baseUrl"> = {}) {
  return createClient<paths>({ ...options, baseUrl });
}

// Compile-time checks that the generated types say what the API answers (tsc fails otherwise).
type Tenant = components["schemas"]["Tenant"];
export const activeStatus: Tenant["status"] = "active";
export async function tenantStatus(api: ReturnType<typeof createTenancyClient>, tenantId: string): Promise<Tenant["status"] | undefined> {
  const { data } = await api.GET("/api/meta-agent/tenants/{tenantId}", { params: { path: { tenantId } } });
  return data?.status;
}
