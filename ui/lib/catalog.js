// The closed operation catalog as the API describes it (docs/openapi.yaml, OperationName,
// CacheType; src/core/operation.h): names, what they do, and cache.flush's one parameter.
export const OPERATIONS = [
  ['health.probe', 'Run the agent\'s health checks now'],
  ['release.report', 'Report the deployed release and Magento version'],
  ['indexer.status', 'Report each indexer\'s status'],
  ['db.status', 'Report whether the schema and data are up to date'],
  ['cache.flush', 'Flush Magento cache types (all, or the ones chosen)'],
  ['maintenance.enable', 'Enable maintenance mode (the storefront shows the maintenance page)'],
  ['maintenance.disable', 'Disable maintenance mode'],
];

export const CACHE_TYPES = ['config', 'layout', 'block_html', 'collections', 'reflection', 'db_ddl', 'compiled_config', 'eav',
  'customer_notification', 'config_integration', 'config_integration_api', 'full_page', 'config_webservice', 'translate'];

export const FINAL_OPERATION_STATES = ['succeeded', 'failed', 'expired'];
export const ACTIVE_RUN_STATES = ['pending', 'triggered', 'running', 'verifying'];
