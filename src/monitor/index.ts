/** The live monitor page: see docs/monitor.md. */
export {
  createMonitor,
  serveMonitor,
  generateMonitorToken,
  type Monitor,
  type MonitorOptions,
  type MonitorServer,
  type ServeMonitorOptions,
} from './http.js';
export type {
  MonitorStateOptions,
  MonitorCallInfo,
  MonitorCallRow,
  MonitorEndedCall,
  MonitorEvent,
  MonitorTotals,
  MonitorHello,
  MonitorTick,
} from './state.js';
