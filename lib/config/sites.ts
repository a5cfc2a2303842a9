/** The public names nginx serves on the VPS, and the gateway image that needs one of them. */
export interface SiteSettings {
  readonly hostnames?: { readonly n8n?: unknown; readonly sim?: unknown; readonly mcp?: unknown };
  readonly mcpGatewayImage?: unknown;
}

/** A problem with the sites, located relative to the object holding `hostnames`. */
export interface SiteIssue {
  readonly path: ['hostnames', 'n8n' | 'sim' | 'mcp'];
  readonly input: unknown;
  readonly message: string;
}

/**
 * Rules across the site names, shared by the config schema and the bundle renderer: nginx routes by
 * host name, so two services on one name would leave one unreachable, and a gateway needs its own name.
 */
export function siteIssues({ hostnames, mcpGatewayImage }: SiteSettings): SiteIssue[] {
  const issues: SiteIssue[] = [];
  const seen = new Map<unknown, string>();
  for (const key of ['n8n', 'sim', 'mcp'] as const) {
    const host = hostnames?.[key];
    if (typeof host !== 'string') continue;
    const first = seen.get(host);
    if (first) issues.push({ path: ['hostnames', key], input: host, message: `a host name different from hostnames.${first}` });
    else seen.set(host, key);
  }
  if (mcpGatewayImage !== undefined && hostnames?.mcp === undefined) {
    issues.push({ path: ['hostnames', 'mcp'], input: undefined, message: 'a host name for the gateway whenever mcpGatewayImage is set' });
  }
  return issues;
}
